"""The study as SageMaker training jobs (docs/DESIGN.md section 9): launch them, run one (the job
entry point), and collect what they leave behind: results, storage, CloudWatch logs and cost.

Every AWS call goes through `aws.Cloud`; endpoints and credentials are found the way boto3
finds them (AWS_ENDPOINT_URL included), so the same code talks to AWS or to a local moto."""

FAMILY = "simplemlp"  # the study's jobs trained SimpleMLP: the tools that read them write its tables

SCRIPTS = {  # the study's script name -> the `psa cloud` tool it runs
    "sagemaker-launch": "launch",
    "sagemaker-results-parser": "results",
    "reconstruct-jobs": "reconstruct-jobs",
    "sagemaker-estimate-storage": "storage",
    "sagemaker-get-training-logs": "logs",
    "sagemaker-logs-parser": "parse-logs",
    "sagemaker-cost-estimator": "cost",
}
