"""The ci package: generated workflows, checked statically and run under act."""
