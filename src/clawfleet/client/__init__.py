"""L4: the typed HTTP client for the ClawFleet API, used by the CLI (and later the runner)."""

from clawfleet.client.config import ClientConfig, load_client_config
from clawfleet.client.http import ApiError, ClawfleetClient, ClientError

__all__ = ["ApiError", "ClawfleetClient", "ClientConfig", "ClientError", "load_client_config"]
