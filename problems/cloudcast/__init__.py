"""Multi-cloud broadcast (ADRS "Cloudcast" case study): network data, overlay simulator, routes
checks and the lower bound."""
