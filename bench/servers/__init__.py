"""One module per benchmark row; each serves the webhook on 127.0.0.1 in one process.

Run one by hand with `python -m bench.servers.<module> PORT`; bench/rows.py has each row's command.
"""
