"""The CLI contract: exit codes, one-line errors, --wait, interrupts."""
