# Logs the GPU inventory with nvidia-smi, as the baseline does: no network.
# expect-verdict: clean
import subprocess


def log_environment(log):
    log(subprocess.run(["nvidia-smi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False).stdout)
