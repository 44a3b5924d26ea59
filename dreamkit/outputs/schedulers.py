"""The samplers `generate` offers, by the names the tools show (a table: no torch, so the
command line can list them in --help without loading anything)."""

__all__ = ["SCHEDULERS"]

# Samplers by the names the tools show. The trained weights do not change with the sampler;
# the pictures do (DPM-Solver++ is good in 20-25 steps, Euler a adds fresh noise every step).
SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}
