"""L7: the `clawfleet` command line. Resource commands talk to the API through clawfleet.client."""
