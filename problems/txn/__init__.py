"""Transaction scheduling problem (ADRS case study); `model` holds the execution model."""
