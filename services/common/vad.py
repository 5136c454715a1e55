"""Silero VAD through onnxruntime, from the model file inside the ``silero-vad`` wheel.

``import silero_vad`` would import torch and set ``torch.set_num_threads(1)``
for the whole process, so we only locate its data folder and never import it.
The model takes 512-sample frames at 16 kHz with the previous 64 samples
prepended as context, and carries a recurrent state; both live in
:class:`VADStream`, one per audio stream. :meth:`SileroVAD.run_batch` runs
many streams' frames in one call, which is how one core keeps up with many
sessions.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FRAME = 512  # samples per frame at 16 kHz (32 ms), fixed by the model
CONTEXT = 64


def model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the silero-vad package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad_16k_op15.onnx"
    if not path.exists():
        raise RuntimeError(f"silero-vad model file not found at {path}")
    return path


class SileroVAD:
    """The shared model: stateless itself; streams keep their own state."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # the file carries unused initialisers; ort warns on each
        self._session = ort.InferenceSession(
            str(path or model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def run_batch(self, streams: list[VADStream], frames: np.ndarray) -> np.ndarray:
        """Speech probability of one ``FRAME``-sample frame per stream; updates each stream."""
        batch = len(streams)
        inputs = np.concatenate([np.stack([s.context for s in streams]), frames], axis=1)
        state = np.concatenate([s.state for s in streams], axis=1)
        out, new_state = self._session.run(
            None, {"input": inputs.astype(np.float32), "state": state, "sr": self._sr}
        )
        for i, s in enumerate(streams):
            s.state = new_state[:, i : i + 1, :]
            s.context = frames[i, -CONTEXT:].astype(np.float32)
        return np.asarray(out, dtype=np.float32).reshape(batch)

    def stream(self) -> VADStream:
        return VADStream(self)

    def iter_speech_probs(self, audio: np.ndarray) -> Iterator[float]:
        """Probability per frame over a clip (float32, 16 kHz), frame by frame, so a caller
        may stop reading early."""
        stream = self.stream()
        for i in range(len(audio) // FRAME):
            yield stream.process(audio[i * FRAME : (i + 1) * FRAME])

    def speech_probs(self, audio: np.ndarray) -> np.ndarray:
        """Probability per frame over a whole clip (float32, 16 kHz)."""
        return np.fromiter(self.iter_speech_probs(audio), dtype=np.float32)


class VADStream:
    """State of one audio stream; feed it consecutive ``FRAME``-sample frames."""

    def __init__(self, model: SileroVAD) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)

    def process(self, frame: np.ndarray) -> float:
        if len(frame) != FRAME:
            raise ValueError(f"VAD frames are {FRAME} samples, got {len(frame)}")
        return float(self.model.run_batch([self], frame.reshape(1, FRAME))[0])
