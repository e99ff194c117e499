"""Runs on machines other than this one: Slurm job arrays (`slurm`) and SageMaker jobs with their
S3 results and CloudWatch logs (`sagemaker`)."""
