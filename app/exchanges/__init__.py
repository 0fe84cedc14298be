"""One small module per exchange behind one interface; `registry` finds them by ccxt id."""
