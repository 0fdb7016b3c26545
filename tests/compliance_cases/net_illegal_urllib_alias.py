# Downloads extra weights at run time through an aliased urllib, inside a helper.
# expect-verdict: flag
# expect-hit: network flag network_call
import io

import torch
import urllib.request as fetch


def _extra_state(url):
    with fetch.urlopen(url) as response:
        return torch.load(io.BytesIO(response.read()))


def load_eval_model(model):
    model.load_state_dict(_extra_state("https://example.invalid/weights.pt"), strict=False)
    return model
