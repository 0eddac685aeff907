"""Streamlit pages and widgets. The only part of sslapp that imports streamlit."""
