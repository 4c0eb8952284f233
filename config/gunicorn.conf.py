"""gunicorn settings for production: gunicorn -c config/gunicorn.conf.py.

Every value can be overridden on the command line or with the matching
GUNICORN_CMD_ARGS entry. Put a TLS-terminating proxy in front of it.
"""

import multiprocessing
import os

wsgi_app = "authserver.wsgi:app"
bind = os.environ.get("AUTHSERVER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("AUTHSERVER_WORKERS", multiprocessing.cpu_count()))
# Password grants spend about a quarter of a second in bcrypt, so a few
# threads per worker keep cheap requests from queueing behind them.
threads = int(os.environ.get("AUTHSERVER_THREADS", 4))
timeout = 30
graceful_timeout = 30
accesslog = None
