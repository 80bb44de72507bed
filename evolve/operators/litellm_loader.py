"""litellm, imported on first use (it takes seconds) and configured once: no network fetch of
its price table, no banners, no chatter. Every module that calls litellm gets it from here."""

from __future__ import annotations

import logging
import os
from typing import Any

# litellm fetches its price table from the network at import unless told otherwise; runs are
# often offline and must not stall on that, and the bundled table is pinned with the package.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_litellm: Any = None


def litellm_module() -> Any:
    """litellm, imported on first use (it takes seconds) with its chatter switched off."""
    global _litellm
    if _litellm is None:
        import litellm

        litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners
        litellm.drop_params = True
        if hasattr(litellm, "telemetry"):
            litellm.telemetry = False
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx"):
            logging.getLogger(name).setLevel(logging.ERROR)
        _litellm = litellm
    return _litellm


def litellm_loaded() -> bool:
    return _litellm is not None
