"""Prints, as JSON, what TensorBoard's own reader (EventAccumulator) sees in an event folder:
scalars, text, histograms, images and the hparams plugin's summaries. tests/loggers.rs runs it
from the virtualenv at $WAVESSM_PYTHON (see .ci/run) to check wavessm's event files.

    python scripts/read_tensorboard.py RUN/tb
"""

import json
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util


def main(logdir):
    everything = {ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0}
    acc = ea.EventAccumulator(logdir, size_guidance=everything)
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "text": {}, "histograms": {}, "images": {}, "hparams": {}}
    for t in tags["scalars"]:
        out["scalars"][t] = [[e.step, e.value] for e in acc.Scalars(t)]
    for t in acc.PluginTagToContent("text"):
        proto = acc.Tensors(t)[-1].tensor_proto
        out["text"][t] = tensor_util.make_ndarray(proto).flatten()[0].decode()
    for t in tags["histograms"]:
        events = acc.Histograms(t)
        h = events[-1].histogram_value
        out["histograms"][t] = {
            "steps": [e.step for e in events],
            "num": h.num,
            "min": h.min,
            "max": h.max,
            "counted": sum(h.bucket),
        }
    for t in tags["images"]:
        im = acc.Images(t)[-1]
        out["images"][t] = {"step": im.step, "width": im.width, "height": im.height,
                            "bytes": len(im.encoded_image_string)}
    for t, content in acc.PluginTagToContent("hparams").items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        out["hparams"][t] = json_format.MessageToDict(data)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
