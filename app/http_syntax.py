"""What HTTP/1.1 allows in a header field name: a token (RFC 9110, section 5.6.2).

Both ends of signvault write headers, its server (app/server/) and its client to the exchanges
(app/proxy/http1.py), and both refuse a name outside this alphabet before any byte goes out. They
check all names at once by deleting these bytes from them: anything left is not a token.
"""

TOKEN_BYTES = bytes(b for b in range(128) if chr(b) in "!#$%&'*+-.^_`|~" or chr(b).isalnum())
