"""Fetch a model's weights from the Hugging Face Hub into the local cache. No torch."""
from __future__ import annotations

import os

# Only what the diffusers pipelines load: configs, tokenizers and safetensors weights (no .bin/.ckpt duplicates).
ALLOW_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]


class HubUnreachable(RuntimeError):
    """The Hub cannot be reached (offline, blocked, or the id does not exist / needs a token)."""


def pull_model(model_id: str, token: str | None = None, revision: str | None = None) -> str:
    """Download MODEL_ID's files (tqdm progress bars on stderr) and return the local snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError)

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise HubUnreachable("HF_HUB_OFFLINE is set: this host does not reach the Hugging Face Hub. "
                             "Unset it, or copy the model folder here and use its path as the model id.")
    try:
        return snapshot_download(model_id, revision=revision, token=token, allow_patterns=ALLOW_PATTERNS)
    except GatedRepoError as exc:
        raise HubUnreachable(f"{model_id} is gated: accept its licence on huggingface.co and set "
                             "huggingface_token") from exc
    except RepositoryNotFoundError as exc:
        raise HubUnreachable(f"{model_id} was not found on the Hub (or is private: set huggingface_token)") from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, OSError) as exc:
        raise HubUnreachable(f"the Hugging Face Hub is unreachable from this host ({exc.__class__.__name__}); "
                             "nothing was downloaded. Check the network or copy the model folder here "
                             "and use its path as the model id.") from exc
