"""The wallet service: the credit ledger: wallets, transactions, holds."""
