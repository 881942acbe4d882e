"""`python -m services.wallet`: serve the wallet service until SIGTERM/SIGINT."""

from kit.server import main
from services.wallet.service import make_spec
from services.wallet.settings import WalletOptions

if __name__ == "__main__":
    # Options are read (and a bad value refused) before anything starts.
    main(make_spec(WalletOptions.from_env()))
