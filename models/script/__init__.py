"""Script writers: llama.cpp in-process or any OpenAI-compatible endpoint, one transcript parser."""
