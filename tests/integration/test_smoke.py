from tests.conftest import Backend


async def test_transfer_smoke(backend: Backend) -> None:
    g = 111111111111111111
    await backend.bank.grant(g, 5, 10, 100)
    r = await backend.bank.transfer(g, 10, 20, 30, "k1")
    assert (r.sender_balance, r.recipient_balance) == (70, 30)
    again = await backend.bank.transfer(g, 10, 20, 30, "k1")
    assert again.replayed and again.sender_balance == 70
    assert await backend.bank.balance(g, 10) == 70
