"""What a trial is: architectures, modes, models and their layers, ablation, keyed randomness, MNIST,
the trial's spec and records, and the device it runs on. Imports nothing of psa above it."""
