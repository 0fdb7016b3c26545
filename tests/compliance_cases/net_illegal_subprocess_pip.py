# Installs a package from the network at run time through pip.
# expect-verdict: flag
# expect-hit: network flag network_command
import subprocess
import sys


def ensure_kernels():
    subprocess.run([sys.executable, "-m", "pip", "install", "fancy-kernels==1.0"], check=True)
