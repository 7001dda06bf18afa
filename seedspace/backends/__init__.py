"""Models behind one protocol (SeedModel): samplers, the pixel UNet and testbeds, the diffusers adapters, loading."""
