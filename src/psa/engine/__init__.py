"""What trains a trial: the single-trial Frustration Engine (`reference`), the batched engine that
trains many at once (`batched`), `psa train`'s checkpoints, and what a run costs (`costmodel`)."""
