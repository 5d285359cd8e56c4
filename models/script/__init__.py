"""Script writers: llama.cpp in-process (``llama``) or any OpenAI-compatible endpoint (``openai_chat``).

Both writers share the prompt text (``prompts``), the episode's phases and
budget rules (``episode``), the text clean-up (``text``) and the transcript
parser (``parser``), so every backend hands the runtime the same events with
the same guarantees; ``gguf`` finds the local model files.
"""
