"""The study as SageMaker training jobs (docs/DESIGN.md section 9): launch them, run one (the job
entry point), and collect what they leave behind: results, storage, CloudWatch logs and cost.

Every AWS call goes through `aws.Cloud`; endpoints and credentials are found the way boto3
finds them (AWS_ENDPOINT_URL included), so the same code talks to AWS or to a local moto."""

FAMILY = "simplemlp"  # the study's jobs trained SimpleMLP: the tools that read them write its tables
