"""Schedulers chosen per request by name, including the names AUTOMATIC1111 clients send."""
from __future__ import annotations

# canonical name → (diffusers class name, extra config)
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "ddim": ("DDIMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
}

# Lower-cased aliases (diffusers class names, A1111 sampler names) → canonical name.
ALIASES: dict[str, str] = {
    "ddimscheduler": "ddim",
    "euler discrete": "euler", "eulerdiscretescheduler": "euler",
    "euler a": "euler_a", "euler ancestral": "euler_a", "euler_ancestral": "euler_a",
    "eulerancestraldiscretescheduler": "euler_a",
    "dpm++ 2m": "dpmpp_2m", "dpm++2m": "dpmpp_2m", "dpmsolvermultistepscheduler": "dpmpp_2m",
    "dpm++ 2m karras": "dpmpp_2m_karras", "dpm++2m karras": "dpmpp_2m_karras",
    "unipc multistep": "unipc", "unipcmultistepscheduler": "unipc",
    "plms": "pndm", "pndmscheduler": "pndm",
    "lms discrete": "lms", "lmsdiscretescheduler": "lms",
}


def canonical_scheduler(name: str | None) -> str:
    """The canonical scheduler name for a requested one (case-insensitive); ValueError when unknown."""
    if name is None or name == "":
        return "ddim"
    if not isinstance(name, str):
        raise ValueError("scheduler must be a string")
    key = " ".join(name.strip().lower().replace("-", " ").split())
    if key in SCHEDULERS:
        return key
    if key.replace(" ", "_") in SCHEDULERS:
        return key.replace(" ", "_")
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"scheduler: unknown scheduler {name!r}; known: {', '.join(sorted(SCHEDULERS))}")


def make_scheduler(canonical: str, base_config):
    """A fresh scheduler instance of the named kind built from a pipeline's scheduler config."""
    import diffusers

    class_name, extra = SCHEDULERS[canonical]
    return getattr(diffusers, class_name).from_config(base_config, **extra)
