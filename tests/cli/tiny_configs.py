"""The smallest supervised and RL configs the CLI tests run (seconds each on one CPU)."""

SUPERVISED = """
seed_everything: 0
model:
  class_path: graphrl.models.RelationalClassifier
  init_args:
    backbone:
      class_path: graphrl.models.SetBackbone
      init_args:
        channels: 16
        topology: complete
        processor: {layer: attention, num_layers: 1, heads: 2}
    head_hidden: 16
    optimizer:
      class_path: torch.optim.AdamW
      init_args: {lr: 0.001}
data:
  class_path: datamodules.NthFarthestDataModule
  init_args:
    num_entities: 4
    max_entities: 4
    eval_num_entities: [4]
    batch_size: 8
    train_samples_per_epoch: 16
    val_samples: 8
    test_samples: 8
trainer:
  accelerator: cpu
  devices: 1
  max_steps: 2
  log_every_n_steps: 1
  enable_model_summary: false
  enable_progress_bar: false
"""

RL = """
seed_everything: 0
model:
  class_path: graphrl.rl.PPO
  init_args:
    env_id: graphrl/BoxWorld-Small-v0
    policy:
      class_path: graphrl.rl.MLPPolicy
      init_args: {hidden: 16, num_layers: 1}
    num_envs: 2
    num_steps: 8
    total_timesteps: 32
    update_epochs: 1
    num_minibatches: 2
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: -1
  log_every_n_steps: 1
  enable_model_summary: false
  enable_progress_bar: false
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {save_last: true}
"""
