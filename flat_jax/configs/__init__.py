"""The shipped configs, one file per preset: `--config sst2_cnn` names flat_jax/configs/sst2_cnn.py
(also reachable as configs/sst2_cnn.py in a checkout, a link to this folder). Each file's
get_config() starts from flat_jax.config.preset(dataset, model) and overrides what it needs."""
