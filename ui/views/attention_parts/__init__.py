"""Parts of the Attention page's views too long for ui/views/attention.py; only that module imports them."""
