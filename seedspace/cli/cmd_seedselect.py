"""``seedspace seedselect``: optimise a seed so the model's image matches a few real images (SeedSelect)."""

from __future__ import annotations

from pathlib import Path

from .. import outputs
from ..backends.run_prior import model_prior_record, prior_mismatch, run_prior_of
from ..checks import MAX_LR, MAX_OPT_STEPS
from ..conditions import condition_from_record
from ..methods.seedselect import INIT_METHODS, SeedSelectSettings, seedselect
from ..runs import open_run
from ..runs.run_settings import SeedSelectRunSettings
from . import common

COMMAND = "seedselect"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="optimise a seed so the model renders a concept shown by a few real images (SeedSelect)",
        description="SeedSelect (Samuel et al., AAAI 2024): optimise the seed by gradient descent through the whole "
                    "DDIM sampler so the generated image matches >= 2 reference images (loss = 10 x semantic feature "
                    "distance + latent MSE to the references' mean). Starting from the NAO centroid of the "
                    "references' inversions (--init nao-centroid) needs far fewer steps than random noise. Every "
                    "step's seeds, losses, optimiser state and image go to <out>/steps/; --resume continues a run.",
        epilog="Example: seedspace seedselect --images refs/ --class Sandal --init nao-centroid --opt-steps 10")
    g = p.add_argument_group("seedselect")
    g.add_argument("--images", default=None,
                   help="a folder of reference images or a comma list of images/folders (at least 2 images)")
    g.add_argument("--init", default="nao-centroid", choices=INIT_METHODS,
                   help="initial seed: random noise, the NAO centroid of the references' inversions, the best point "
                        "on the NAO paths from it to each inversion, or their centre of gravity")
    g.add_argument("--opt-steps", type=int, default=None,
                   help=f"optimisation steps, 0 to {MAX_OPT_STEPS} (default: 30, or the resumed run's)")
    g.add_argument("--lr", type=float, default=0.1, help=f"AdamW learning rate in (0, {MAX_LR:g}] (x0.1 after 3 steps)")
    g.add_argument("--seed", type=int, default=0, help="seed integer of --init random, in [0, 2^63)")
    g.add_argument("--num-seeds", type=common.positive_int, default=1,
                   help="seeds optimised together (random: seed, seed+1, ...; nao-paths: the best candidates)")
    g.add_argument("--features", default=None,
                   help="a local CLIP folder (transformers or open_clip) for the semantic term; default: the model's "
                        "own features (the testbed's encoder, trained apart from the judge)")
    common.add_prior_option(g)
    common.add_model_options(p, resume=True)
    p.set_defaults(func=run, resume_may_change=("opt_steps",))


def _collect(spec: str) -> list[Path]:
    return common.collect_images([t.strip() for t in spec.split(",") if t.strip()])


def run(args) -> int:
    given = {} if args.opt_steps is None else {"opt_steps": args.opt_steps}
    own = SeedSelectRunSettings.checked(init=args.init, lr=args.lr, seed=args.seed, num_seeds=args.num_seeds,
                                        features=args.features, **given)
    folder, params, model = common.resumed_run(args, COMMAND)
    if params is not None:
        if args.images is not None:
            raise common.CLIError("--resume continues a run with its own reference images: do not give --images")
        params = SeedSelectRunSettings.from_record({**params, **given}).to_record()  # given: run further
        cond = condition_from_record(params["condition"])
        paths = [item["image"] for item in params["images"]]
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise common.CLIError(f"reference image {missing[0]} of the run no longer exists")
    else:
        if args.images is None:
            raise common.CLIError("give --images (a folder or comma list of at least 2 reference images) or --resume")
        image_paths = _collect(args.images)
        if len(image_paths) < 2:
            raise common.CLIError(f"SeedSelect needs at least 2 reference images, got {len(image_paths)}")
        ref = common.model_ref(args.model)
        model = common.load_for(args, ref)
        cond, cond_record = common.resolve_condition(model, args.class_, args.prompt, args)
        params = {**common.sampling_params(args, model, ref, cond_record), **own,
                  "images": [{"image": str(p.resolve()), "sha256": outputs.file_sha256(p)[:16]} for p in image_paths]}
        params.update(common.image_params(args, model, params["images"]))
        nao_start = args.init in ("nao-centroid", "nao-paths")
        own = model_prior_record(model) if args.prior == "model" and not nao_start else None
        if own is not None and prior_mismatch(own, model, params["steps"], params.get("scheduler")):
            prior, prior_note = None, None  # a start that does not use a misfit model prior records none
        else:  # a NAO start under a misfit model prior is refused: no seeds exist yet to fit one to
            prior, prior_note = run_prior_of(args.prior, model, params["steps"], params.get("scheduler"), inverts=True)
        if prior_note:
            common.log.info(prior_note)
        params = SeedSelectRunSettings.from_record({**params, **({} if prior is None else {"prior": prior})})
        params = params.to_record()
        n_steps = params["opt_steps"] + 1  # every step keeps the seeds, the two AdamW moments and an image per seed
        common.check_job_size(args, args.num_seeds * n_steps, args.num_seeds * n_steps, model, per_seed=3)
        if "prior" in params and not nao_start:
            common.log.info(f"--prior shapes the NAO initialisations only; --init {args.init} does not use it")
        paths = [item["image"] for item in params["images"]]

    images = model.load_images(paths)
    folder, record = open_run(COMMAND, params, args.out, resume=folder)
    record["parameters"] = params  # a resume may have extended opt_steps
    with record.guard():
        settings = SeedSelectSettings(init=params["init"], steps=params["opt_steps"], lr=params["lr"],
                                      sampler_steps=params["steps"], inversion_steps=params["steps"],
                                      guidance=params["guidance"], num_seeds=params["num_seeds"], seed=params["seed"],
                                      scheduler=params.get("scheduler"), prior=params.get("prior"))
        result = seedselect(model, images, cond, settings=settings, feature_fn=params.get("features"),
                            out_dir=folder / "steps", resume=args.resume is not None)
        meta = {"command": COMMAND, "model": params["model"]["id"], "init": params["init"],
                "step": result.steps, "loss": result.history[-1]["losses"]}
        outputs.save_seeds(folder / "seeds.safetensors", {"seeds": result.seed}, meta)
        outputs.save_seeds(folder / "init.safetensors", {"seeds": result.init_seed}, meta)
        refs_row = list(outputs.to_uint8(images))
        final_row = list(outputs.to_uint8(result.image))
        grid = outputs.make_grid([refs_row, final_row], ["references", f"step {result.steps}"], None)
        outputs.save_png(folder / "grid.png", grid,
                         outputs.JSON_PREFIX + outputs.canonical_json({"command": COMMAND, "params": params}))
        for i, img in enumerate(final_row):
            outputs.save_png(folder / f"final_{i:03d}.png", img)
        h0, h1 = result.history[0], result.history[-1]
        record["result"] = {"steps": result.steps, "loss_start": h0["loss"], "loss_end": h1["loss"],
                            "semantic_end": h1["semantic"], "appearance_end": h1["appearance"]}
        record.log(f"seedselect: initialisation {result.init_seconds:.2f} s, "
                   f"{h1.get('elapsed', float('nan')):.2f} s in all")  # wall-clock times stay out of run.json
        for name in ["seeds.safetensors", "init.safetensors", "grid.png", "steps/history.json"] + \
                [f"final_{i:03d}.png" for i in range(len(final_row))]:
            record.add_file(folder / name)
    print(f"wrote {folder}: {result.steps} steps from {params['init']}, loss {h0['loss']:.4f} -> {h1['loss']:.4f}; "
          "seeds.safetensors, grid.png, steps/ (every step), run.json")
    return 0
