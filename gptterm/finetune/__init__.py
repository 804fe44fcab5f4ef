"""Fine-tuning a local model on your own data with llama.cpp's training API.

Full fine-tuning, not LoRA: llama.cpp 0.3.36 (``llama_opt_init`` / ``llama_opt_epoch``) trains F32 tensors
only, so the base is converted to F32, trained, saved and quantized back. The work runs in a child process
(``python -m gptterm.finetune.train``) that reports progress as JSON lines on a pipe, so an abort inside
llama.cpp (a failed ``GGML_ASSERT``) is one clear error in the parent, never a crashed app.

- ``data``: reading JSONL chat or plain text (one error naming the bad line), the validation split, windows
- ``plan``: what a run needs (memory, disk) and whether this machine has it
- ``events``: what the child reports (the pipe's JSON lines, as dataclasses)
- ``llama_train``: the training loop over llama.cpp (in the child)
- ``gguf_files``: conversion to F32, the metadata the saver drops, quantizing back (in the child)
- ``train``: the child process
- ``runner``: the parent's side: ``FineTune`` starts the child, yields its events, stops it, registers the model
- ``curve``: the loss curve, drawn with plotext
"""
