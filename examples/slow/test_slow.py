"""A slow suite: about 30 seconds of output, to watch a live log or to try cancelling."""

import time


def test_counts_slowly():
    for step in range(1, 31):
        print(f"step {step} of 30", flush=True)
        time.sleep(1)
