# Fetches a tokenizer from the Hugging Face Hub while evaluating.
# expect-verdict: flag
# expect-hit: network flag network_call
from huggingface_hub import hf_hub_download


def tokenizer_path():
    return hf_hub_download(repo_id="someone/tokenizer", filename="tok.model")
