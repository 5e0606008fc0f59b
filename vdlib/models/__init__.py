"""The networks and how they diffuse: the 3D U-Net (``unet``), noise schedules and samplers with
their config (``diffusion``), the upsamplers' low-res input (``lowres``) and its upscale
(``upscale``), and what a model folder says about itself (``card``). Nothing here reads params."""
