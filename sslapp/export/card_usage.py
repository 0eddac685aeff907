"""The model card's "Use it" section: how to run the export, for its kind of item and the files it holds
(`sslapp predict`, predict_onnx.py, TorchScript, the safetensors weights). Part of `model_card`."""

from __future__ import annotations

from string import Template
from typing import Any

from sslapp.export.manifest import MODEL_FILES

USE_PREDICT = Template("""\
With sslapp installed (same preprocessing as the app, no torch needed):

```bash
sslapp predict . photo.jpg more_photos/ --json$model_option
```

""")

USE_PREDICT_TEXT = """\
With sslapp installed (texts read as the app reads them, no torch needed): a table's rows come out as
FILE:ROW (pick its column with `--text-column`), a .txt file is one text:

```bash
sslapp predict . texts.csv notes/ --json
```

"""

USE_PREDICT_SOUND = Template("""\
With sslapp installed (sounds read and cut as the app cuts them, no torch needed): a recording shorter than
one and a half windows is one result; a longer one gives one result per $seconds s window, named
FILE:START (`long.wav:12.288s`, as the workspace names it):

```bash
sslapp predict . call.wav recordings/ --json$model_option
```

""")

USE_ONNX_SOUND = Template("""\
With onnxruntime, soundfile and numpy only: `predict_onnx.py` carries sslapp's sound front end (its
numpy code, copied in at export), so it cuts and draws the windows as the app does:

```bash
pip install onnxruntime soundfile numpy
python predict_onnx.py call.wav long.flac --json$model_option
```

""")

USE_ONNX = Template("""\
With $needs only (`predict_onnx.py`):

```python
$snippet
```

""")

USE_TORCHSCRIPT = Template("""\
In PyTorch, without sslapp (the same float32 input as above):

```python
import torch
model = torch.jit.load('$file')
out = model(torch.rand(1, 3, $size, $size))
```

""")

USE_SAFETENSORS = Template("""\
With sslapp, from the safetensors weights (nothing pickled):

```python
from sslapp.$module import $loader
model = $loader('$file')
```

""")

USE_TEXT_SAFETENSORS = Template("""\
In PyTorch with sslapp, from the safetensors weights (nothing pickled; the inputs as for the ONNX model):

```python
from sslapp.export.text_model import load_text_classifier
model = load_text_classifier('$file')
probabilities = model($inputs)
```

""")

LOADERS = {"classifier": ("finetune.model", "load_classifier"), "encoder": ("models.encoder", "load_encoder")}


def _text_usage(m: dict[str, Any], snippet: str | None) -> str:
    word_pieces = "tokenizer" in m["text_encoder"]
    usage = USE_PREDICT_TEXT
    if snippet:
        usage += USE_ONNX.substitute(needs="onnxruntime, numpy and tokenizers" if word_pieces else "onnxruntime and numpy",
                                     snippet=snippet.rstrip())
    if "safetensors" in m["formats"]:
        usage += USE_TEXT_SAFETENSORS.substitute(file=MODEL_FILES[("classifier", "safetensors")],
                                                 inputs=", ".join(m["input"]["names"]))
    return usage


def usage_section(m: dict[str, Any], snippet: str | None) -> str:
    """How to run the export (model.json `m`, predict_onnx.py's text `snippet` when it has one)."""
    if m.get("text_encoder"):
        return _text_usage(m, snippet)
    part, size, sounds = m["kind"], m["input"]["size"], m.get("modality") == "audio"
    q = m.get("quantized")
    option = script_option = ""
    if q and m.get("predict_model") != q["file"]:
        item = "call.wav" if sounds else "photo.jpg"
        option = f"\nsslapp predict . {item} --model {q['type']}   # the smaller {q['type']} model"
        script_option = f"\npython predict_onnx.py --model {q['file']} {item}   # the smaller {q['type']} model"
    seconds = m["preprocessing"].get("window_seconds")
    if part != "classifier":
        usage = ""
    elif sounds:
        usage = USE_PREDICT_SOUND.substitute(seconds=seconds, model_option=option)
    else:
        usage = USE_PREDICT.substitute(model_option=option)
    if snippet and sounds:  # the script holds the front end: its use, not its 200 lines
        usage += USE_ONNX_SOUND.substitute(model_option=script_option)
    elif snippet:
        usage += USE_ONNX.substitute(needs="onnxruntime, Pillow and numpy", snippet=snippet.rstrip())
    if "torchscript" in m["formats"]:
        usage += USE_TORCHSCRIPT.substitute(file=MODEL_FILES[(part, "torchscript")], size=size)
    if "safetensors" in m["formats"]:
        module, loader = LOADERS[part]
        usage += USE_SAFETENSORS.substitute(module=module, loader=loader, file=MODEL_FILES[(part, "safetensors")])
    return usage
