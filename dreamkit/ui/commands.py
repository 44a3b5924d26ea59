"""What each `dreamkit` command does (the parser and its flags are in dreamkit/ui/cli.py).

These are faces: they read the flags, call the package, and print for a person. They are also
where planning happens before training (the loop does not plan: `plan_for_training`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ..core import checks
from ..core.concepts import class_jobs
from ..core.config import TrainConfig
from ..core.env import check, device, format_env_report, inference_dtype
from ..core.errors import ConfigError, DreamkitError
from ..evaluation.evaluate import METRICS
from ..evaluation.scoring import evaluate_run
from ..inputs.doctor import PHOTOS_MIN, check_photos, fix_photos
from ..inputs.prior import class_image_settings, generate_class_images
from ..models.loading import check_model_source, load_pipeline, load_tokenizer
from ..models.lora import is_lora_run
from ..models.tokens import check_identifier
from ..outputs.advice import loading_advice
from ..outputs.export import export_all
from ..outputs.hub import push_to_hub
from ..outputs.sample import checkpoint_grid, generate, output_folder, save_images
from ..outputs.viewer import image_grid
from ..planning.planner import GPUS, plan, rank_recipes
from ..toy import write_subject_photos
from ..toy.demo import run_demo
from ..toy.pretrain import pretrain
from ..toy.scorer import choose_scorer
from ..training.loop import train
from ..training.step import settled_step_mode

__all__ = ["config_from", "plan_for_training", "cmd_train", "cmd_plan_memory",
           "cmd_class_images", "cmd_generate", "cmd_export", "cmd_check_data",
           "cmd_check_token", "cmd_evaluate", "cmd_demo", "cmd_env", "cmd_toy"]


def config_from(args, ready: bool = True) -> TrainConfig:
    """The TrainConfig the flags describe (a --config file, overridden by flags given)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    cfg = TrainConfig.load(args.config).replace(**given) if getattr(args, "config", None) \
        else TrainConfig(**given)
    if ready:  # the photos and class are needed to train, not to plan
        cfg.check_ready()
    return cfg


def plan_for_training(config: TrainConfig, say=print):
    """The memory plan train() should get: on a GPU (whether it fits, in one line) and for
    step_mode='auto' with prior preservation (which mode); None when neither needs one."""
    auto = settled_step_mode(config) is None  # `auto` left to the planned peaks
    if not (auto or torch.cuda.is_available()):
        return None
    memory = plan(config, suggest=False)
    if torch.cuda.is_available():
        say(memory.line())
        torch.cuda.reset_peak_memory_stats()
    return memory


def cmd_train(args) -> int:
    config = config_from(args)
    train(config, overwrite=args.overwrite, plan=plan_for_training(config))
    return 0


def cmd_plan_memory(args) -> int:
    config = config_from(args, ready=False)
    check_model_source(config.pretrained_model_name_or_path)  # a local path must be a model
    result = plan(config, gpu=args.gpu)
    print(result.text())
    if args.recipes:
        print(f"recipes on {result.gpu}, those that fit first, fastest first:")
        for name, p in rank_recipes(config, gpu=result.gpu if result.gpu in GPUS else "T4"):
            print(f"  {name}: ~{p.total:.1f} GiB, {'fits' if p.fits else 'does NOT fit'}, "
                  f"time {p.time_text()}")
    return 0 if result.fits else 1


def cmd_class_images(args) -> int:
    cfg = config_from(args)
    pipe = load_pipeline(cfg.pretrained_model_name_or_path, device=device(),
                         dtype=inference_dtype(), revision=cfg.revision, variant=cfg.variant)
    for class_dir, prompt, num in class_jobs(cfg.resolved_concepts, True):
        paths = generate_class_images(pipe, prompt, class_dir, num,
                                      **class_image_settings(cfg))
        what = repr(prompt[0]) + (f" and {len(prompt) - 1} variant(s)" if len(prompt) > 1 else "")
        print(f"{len(paths)} class images of {what} in {class_dir}")
    return 0


def cmd_generate(args) -> int:
    checks.check_generate(args)
    if args.base and not is_lora_run(args.model) and not args.compare_base:
        raise ConfigError("base", args.base, f"is used only for a LoRA run; {args.model} is a "
                          f"whole model with its own weights: leave --base out")
    pipe = load_pipeline(args.model, device=device(), dtype=inference_dtype(), lora=args.lora,
                         base=args.base)
    out = output_folder(args.model, args.prompt, args.out)  # once the model loads
    kw = dict(negative_prompt=args.negative_prompt, num_images=args.num_images,
              guidance_scale=args.guidance_scale, num_inference_steps=args.steps, seed=args.seed,
              height=args.height, width=args.width, scheduler=args.scheduler)
    images = generate(pipe, args.prompt, **kw)
    paths = save_images(images, out, args.prompt, args.seed,
                        guidance_scale=args.guidance_scale, steps=args.steps,
                        negative_prompt=args.negative_prompt or "",
                        scheduler=args.scheduler or type(pipe.scheduler).__name__,
                        model=args.model, lora=args.lora or "")
    image_grid(images).save(out / "grid.png")
    print(f"{len(paths)} image(s) and grid.png written to {out}")
    if args.checkpoints:
        grid, labels = checkpoint_grid(args.model, args.prompt, **{k: v for k, v in kw.items()
                                                                  if k != "num_images"},
                                       num_images=args.num_images)
        grid.save(out / "checkpoints.png")
        print(f"checkpoints.png: one row each for {', '.join(labels)}")
    if args.compare_base:  # the same seeds on the base model: upper row base, lower row yours
        saved = Path(args.model) / "config.json"
        base = args.base or (TrainConfig.load(saved).pretrained_model_name_or_path
                             if saved.is_file() else None)
        if not base:
            raise DreamkitError("--compare_base needs a run folder (with config.json) or --base")
        before = generate(load_pipeline(base, device=device(), dtype=inference_dtype()),
                          args.prompt, **kw)
        image_grid(before + images, rows=2, labels=["base", "fine-tuned"]).save(
            out / "before_after.png")
        print(f"before_after.png (upper row: {base}; lower row: {args.model}) in {out}")
    return 0


def cmd_export(args) -> int:
    if not is_lora_run(args.model):  # the model first: the basic mistake
        check_model_source(args.model, setting="model")
    checks.check_export(args)
    written = export_all(args.model, args.out, single_file=args.single_file, half=args.half,
                         diffusers=not args.no_diffusers, base=args.base, name=args.name)
    for path in written:
        print(f"wrote {path}")
    base = args.base or (_base_of(args.model) if is_lora_run(args.model) else None)
    advice = loading_advice(args.out, written, args.model, base)
    if any(a.code for a in advice):
        print("to load it (Python, after: from diffusers import DiffusionPipeline, "
              "StableDiffusionPipeline):")
    for line in advice:
        print(line)
    if args.push_to_hub:
        saved = Path(args.model) / "config.json"
        if saved.is_file() and not (Path(args.out) / "config.json").exists():
            (Path(args.out) / "config.json").write_text(saved.read_text())  # for the card
        print(f"uploaded to {push_to_hub(args.out, args.push_to_hub, private=not args.public)}")
    return 0


def _base_of(run) -> str | None:
    """The base model a run was trained on (its config.json), if it says."""
    saved = Path(run) / "config.json"
    return TrainConfig.load(saved).pretrained_model_name_or_path if saved.is_file() else None


def cmd_check_data(args) -> int:
    checks.check_check_data(args)
    report = check_photos(args.folder, resolution=args.resolution,
                          center_crop=not args.no_center_crop,
                          aspect_buckets=args.aspect_buckets)
    print(report.text())
    if args.grid:
        report.grid(args.grid)
        print(f"thumbnails with their flags: {args.grid}")
    if args.fix:
        written = fix_photos(report, args.fix)
        print(f"{len(written)} upright RGB copies (duplicates and unreadable files left out) "
              f"in {args.fix}")
        if len(written) < PHOTOS_MIN:
            print(f"warning: {args.fix} holds {len(written)} photo(s), fewer than the "
                  f"{PHOTOS_MIN} DreamBooth needs; add sharp photos of other poses or places")
            return 1
    return 0 if report.ok else 1


def cmd_check_token(args) -> int:
    checks.check_check_token(args)
    check = check_identifier(load_tokenizer(args.model), args.identifier, args.class_noun,
                             n_suggestions=args.suggest)
    print(check.text())
    return 0 if check.ok else 1


def cmd_evaluate(args) -> int:
    checks.check_evaluate(args)
    saved = Path(args.run) / "config.json"
    base = TrainConfig.load(saved).pretrained_model_name_or_path if saved.is_file() else ""
    scorer = choose_scorer(args.scorer, base, args.dino, args.clip)
    r = evaluate_run(args.run, scorer, prompts=args.prompts, per_prompt=args.per_prompt,
                     n_class=args.n_class, seed=args.seed, say=print)
    names = r.get("metric_names", {})
    print(f"{'':18}{'base':>9}{'tuned':>9}   measure")
    for k in METRICS:
        if r["base"].get(k) is not None:
            print(f"{k:18}{r['base'][k]:>9.3f}{r['fine_tuned'][k]:>9.3f}   {names.get(k, '')}")
    if "why" in r:
        print(f"best step: {r['why']}")
    print(f"report: {args.run}/evaluation.json, chart: {args.run}/evaluation.png")
    return 0


def cmd_demo(args) -> int:
    checks.check_demo(args)
    run_demo(args.out, steps=args.steps, with_prior_preservation=not args.no_prior,
             step_mode=args.step_mode, overwrite=args.overwrite, seed=args.seed)
    return 0


def cmd_env(args) -> int:
    print(format_env_report())
    check(report=print)
    return 0


def cmd_toy(args) -> int:
    checks.check_toy(args)
    if args.toy_command == "pretrain":
        log = pretrain(args.out, seed=args.seed, n_images=args.images, vae_steps=args.vae_steps,
                       unet_steps=args.unet_steps)
        print(json.dumps(log, indent=1))
    else:
        paths = write_subject_photos(args.out)
        print(f"{len(paths)} photos of the toy subject in {args.out}")
    return 0
