"""Creating and checking projects: init, quickstart, doctor, packaging."""
