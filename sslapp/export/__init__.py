"""Export: the fine-tuned model (ONNX and safetensors by default; TorchScript, the encoder alone and
quantized ONNX copies on request), labels and a model card.

`export` runs an export from the parts: `writers` (model files), `verify` (each file checked
against the torch model), `quantize` (fp16/int8 ONNX copies and their agreement), `labels` (the one
label file schema; `label_formats` for Label Studio and COCO, `label_import` to bring any of them in,
all or nothing) and `imagefolder`, `model_json` (the manifest), `model_card` (with `card_usage`) and
`snippets` (the export's predict_onnx.py: `onnx_snippet` for images, `audio_snippet` with the app's
sound front end copied in for sounds). A sound classifier exports as an image one does, on its
log-mel pictures. A text classifier (a head on MiniLM or TF-IDF vectors) goes through `text_export`:
`text_model` (encoder graph and head as one module), `text_inputs` (token ids or term counts from the
export's own files) and `text_snippet` (its predict_onnx.py). `manifest`, the label modules,
`model_json`, `model_card`, `snippets`, `text_inputs` and `predict` import no torch, so `sslapp
predict`, `sslapp label(s)` and the pages that use them stay light.
"""
