"""What each `dreamkit` command does (the parser and its flags are in dreamkit/cli.py)."""

from __future__ import annotations

from pathlib import Path

from .errors import DreamkitError

__all__ = ["_cmd_train", "_cmd_plan_memory", "_cmd_class_images", "_cmd_generate", "_cmd_export", "_cmd_check_data", "_cmd_check_token", "_cmd_evaluate", "_cmd_demo", "_cmd_toy"]


def _config_from(args, ready: bool = True):
    from .cli import config_from
    return config_from(args, ready)


def _cmd_train(args) -> int:
    from .planner import plan
    from .train import train

    config = _config_from(args)
    memory = plan_for_training(config, plan)
    train(config, overwrite=args.overwrite, plan=memory)
    return 0


def plan_for_training(config, plan, say=print):
    """The memory plan train() should get: on a GPU (whether it fits, in one line) and for
    step_mode='auto' (which mode); None when neither needs one."""
    import torch

    auto = config.step_mode == "auto" and config.prior_preservation \
        and not config.optimizer_in_backward
    if not (auto or torch.cuda.is_available()):
        return None
    memory = plan(config, suggest=False)
    if torch.cuda.is_available():
        say(memory.line())
        torch.cuda.reset_peak_memory_stats()
    return memory


def _cmd_plan_memory(args) -> int:
    from .planner import plan
    result = plan(_config_from(args, ready=False), gpu=args.gpu)
    print(result.text())
    return 0 if result.fits else 1


def _cmd_class_images(args) -> int:
    import torch

    from .models import load_pipeline
    from .prior import generate_class_images

    cfg = _config_from(args)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = load_pipeline(cfg.pretrained_model_name_or_path, device=dev,
                         dtype=torch.float16 if dev == "cuda" else None,
                         revision=cfg.revision, variant=cfg.variant)
    from .concepts import class_jobs
    for class_dir, prompt, num in class_jobs(cfg.resolved_concepts, True):
        paths = generate_class_images(pipe, prompt, class_dir, num, seed=cfg.seed,
                                      batch_size=cfg.sample_batch_size,
                                      num_inference_steps=cfg.class_inference_steps,
                                      guidance_scale=cfg.guidance_scale,
                                      resolution=cfg.resolution)
        print(f"{len(paths)} class images of {prompt!r} in {class_dir}")
    return 0


def _cmd_generate(args) -> int:
    import torch

    from .sample import generate, save_images
    from .viewer import image_grid

    from .models import load_pipeline

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if dev == "cuda" else None
    pipe = load_pipeline(args.model, device=dev, dtype=dtype, lora=args.lora, base=args.base)
    kw = dict(negative_prompt=args.negative_prompt, num_images=args.num_images,
              guidance_scale=args.guidance_scale, num_inference_steps=args.steps, seed=args.seed,
              height=args.height, width=args.width, scheduler=args.scheduler)
    images = generate(pipe, args.prompt, **kw)
    paths = save_images(images, args.out, args.prompt, args.seed, guidance_scale=args.guidance_scale,
                        steps=args.steps, negative_prompt=args.negative_prompt or "",
                        scheduler=args.scheduler or type(pipe.scheduler).__name__,
                        model=args.model, lora=args.lora or "")
    image_grid(images).save(f"{args.out}/grid.png")
    print(f"{len(paths)} image(s) and grid.png written to {args.out}")
    if args.checkpoints:
        from .sample import checkpoint_grid
        grid, labels = checkpoint_grid(args.model, args.prompt, **{k: v for k, v in kw.items()
                                                                  if k != "num_images"},
                                       num_images=args.num_images)
        grid.save(f"{args.out}/checkpoints.png")
        print(f"checkpoints.png: one row each for {', '.join(labels)}")
    if args.compare_base:  # the same seeds on the base model: upper row base, lower row yours
        from .config import TrainConfig
        saved = Path(args.model) / "config.json"
        base = args.base or (TrainConfig.load(saved).pretrained_model_name_or_path
                             if saved.is_file() else None)
        if not base:
            raise DreamkitError("--compare_base needs a run folder (with config.json) or --base")
        before = generate(load_pipeline(base, device=dev, dtype=dtype), args.prompt, **kw)
        image_grid(before + images, rows=2).save(f"{args.out}/before_after.png")
        print(f"before_after.png (upper row: {base}; lower row: {args.model}) in {args.out}")
    return 0


def _cmd_export(args) -> int:
    from .export import export_all

    written = export_all(args.model, args.out, single_file=args.single_file, half=args.half,
                         diffusers=not args.no_diffusers, base=args.base)
    for path in written:
        print(f"wrote {path}")
    if args.single_file:
        print("load it with StableDiffusionPipeline.from_single_file(path), or put it in "
              "AUTOMATIC1111's models/Stable-diffusion or ComfyUI's models/checkpoints")
    if args.push_to_hub:
        from .hub import push_to_hub
        saved = Path(args.model) / "config.json"
        if saved.is_file() and not (Path(args.out) / "config.json").exists():
            (Path(args.out) / "config.json").write_text(saved.read_text())  # for the card
        print(f"uploaded to {push_to_hub(args.out, args.push_to_hub, private=not args.public)}")
    return 0


def _cmd_check_data(args) -> int:
    from .doctor import check_photos, fix_photos

    report = check_photos(args.folder, resolution=args.resolution,
                          center_crop=not args.no_center_crop)
    print(report.text())
    if args.grid:
        report.grid(args.grid)
        print(f"thumbnails with their flags: {args.grid}")
    if args.fix:
        written = fix_photos(report, args.fix)
        print(f"{len(written)} upright RGB copies (duplicates and unreadable files left out) "
              f"in {args.fix}")
    return 0 if report.ok else 1


def _cmd_check_token(args) -> int:
    from .models import load_tokenizer
    from .tokens import check_identifier

    check = check_identifier(load_tokenizer(args.model), args.identifier, args.class_noun,
                             n_suggestions=args.suggest)
    print(check.text())
    return 0 if check.ok else 1


def _cmd_evaluate(args) -> int:
    from .evaluate import METRICS
    from .scoring import evaluate_run

    r = evaluate_run(args.run, scorer=args.scorer, prompts=args.prompts,
                     per_prompt=args.per_prompt, n_class=args.n_class, seed=args.seed,
                     dino=args.dino, clip=args.clip)
    names = r.get("metric_names", {})
    print(f"{'':18}{'base':>9}{'tuned':>9}   measure")
    for k in METRICS:
        if r["base"].get(k) is not None:
            print(f"{k:18}{r['base'][k]:>9.3f}{r['fine_tuned'][k]:>9.3f}   {names.get(k, '')}")
    if "why" in r:
        print(f"best step: {r['why']}")
    print(f"report: {args.run}/evaluation.json, chart: {args.run}/evaluation.png")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo
    run_demo(args.out, steps=args.steps, with_prior_preservation=not args.no_prior,
             step_mode=args.step_mode, overwrite=args.overwrite, seed=args.seed)
    return 0


def _cmd_toy(args) -> int:
    import json

    if args.toy_command == "pretrain":
        from .toy.pretrain import pretrain
        log = pretrain(args.out, seed=args.seed, n_images=args.images, vae_steps=args.vae_steps,
                       unet_steps=args.unet_steps)
        print(json.dumps(log, indent=1))
    elif args.toy_command == "evaluate":
        from .models import load_pipeline
        from .toy.metrics import evaluate_base, evaluate_toy
        pipe = load_pipeline(args.model)
        report = evaluate_toy(pipe, seed=args.seed)
        if args.base:
            report.update(evaluate_base(pipe, seed=args.seed + 1000))
        print(json.dumps(report, indent=1))
    else:
        from .toy import write_subject_photos
        paths = write_subject_photos(args.out)
        print(f"{len(paths)} photos of the toy subject in {args.out}")
    return 0
