"""State-based diffusion policy (Chi et al. 2023): ``DiffusionConfig`` + ``DiffusionPolicy``."""
from policies.diffusion.configuration import DiffusionConfig
from policies.diffusion.modeling import DiffusionPolicy

__all__ = ["DiffusionConfig", "DiffusionPolicy"]
