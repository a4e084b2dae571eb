"""Response models: the OpenAI wire format plus Keel's extensions. Request bodies are the domain services'
input contracts and live beside them in core/<domain>/schemas.py."""
