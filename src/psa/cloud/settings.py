"""Cloud settings (docs/DESIGN.md section 9), from the environment or a `.env` file.

The `.env` file is loaded into the environment without overriding what is already set, so boto3
sees its credentials and AWS_ENDPOINT_URL exactly as if they had been exported. Settings are
read when a tool needs them: a tool that only reads logs does not ask for an IAM role. Nothing
here ever prints a value."""

import os
from pathlib import Path

from dotenv import load_dotenv

from psa import PSAError

ENV_FILES = (Path(".env"), Path("aws/sagemaker/.env"))  # searched in this order
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def load_settings(env_file: Path | str | None = None) -> "Settings":
    if env_file is not None:
        if not Path(env_file).is_file():
            raise PSAError(f"settings file not found: {env_file}")
        load_dotenv(env_file, override=False)
    for path in ENV_FILES:
        if path.is_file():
            load_dotenv(path, override=False)
    return Settings()


class Settings:
    """Each property reads its variable now, and names it when it is missing or malformed."""

    def _get(self, name: str, default: str | None = None) -> str:
        value = os.environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise PSAError(f"missing setting {name}: export it or add it to .env (or aws/sagemaker/.env)")
        return default

    def _int(self, name: str, default: int) -> int:
        text = self._get(name, str(default))
        if not text.isdigit() or int(text) < 1:
            raise PSAError(f"setting {name} must be a whole number of seconds, found {text!r}")
        return int(text)

    @property
    def region(self) -> str:
        return self._get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "").strip() or None)

    @property
    def bucket(self) -> str:
        return self._get("S3_BUCKET_NAME")

    @property
    def prefix(self) -> str:
        return self._get("S3_PREFIX").strip("/")

    @property
    def role_arn(self) -> str:
        role = self._get("AWS_SAGEMAKER_ROLE")
        if role.startswith("arn:"):
            return role
        return f"arn:aws:iam::{self._get('AWS_ACCOUNT_ID')}:role/{role}"

    @property
    def instance_type(self) -> str:
        return self._get("INSTANCE_TYPE", "ml.g4dn.xlarge")

    @property
    def use_spot(self) -> bool:
        text = self._get("USE_SPOT_INSTANCES", "true").lower()
        if text not in _TRUE | _FALSE:
            raise PSAError(f"setting USE_SPOT_INSTANCES must be true or false, found {text!r}")
        return text in _TRUE

    @property
    def max_run_seconds(self) -> int:
        # The longest published job ran 27.9 h; two days leaves room for a slower instance.
        return self._int("MAX_RUN_SECONDS", 2 * 24 * 3600)

    @property
    def max_wait_seconds(self) -> int:
        """Spot jobs: run time plus time spent waiting for capacity."""
        return self._int("MAX_WAIT_SECONDS", 2 * self.max_run_seconds)

    @property
    def training_image(self) -> str | None:
        """An explicit image URI; None means the region's PyTorch training image."""
        return os.environ.get("TRAINING_IMAGE", "").strip() or None
