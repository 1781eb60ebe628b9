"""Connectors: ERP and bank files (ISO 20022 pain.001, pain.002, camt.053, camt.054; MT940; CSV exports
with a YAML column mapping) turned into contract events, and a drop folder that publishes them once.

    formats.py     which connector reads a file (auto-detection), convert one file
    pain001.py     payment orders -> payment.released
    pain002.py     status reports -> psp.submitted / psp.failed (reasons.py: ISO reason codes in words)
    camt.py        camt.053 / camt.054 booked debits -> psp.settled (orphans included)
    mt940.py       MT940 statement debits -> psp.settled
    csvmap.py      the YAML column mapping; csvread.py: CSV rows -> events
    accounts.py    IBAN / BIC checks (schwifty) carried as `payee_check`
    xmlsafe.py     hardened XML parsing, official schemas, positions
    base.py        results, rejections, limits, exact values, the ingest check every event passes
    ledger.py, sinks.py, watch.py   the drop folder: durable ledger, events file / Kafka sinks
    cli.py         `paysentry connect convert` and `paysentry connect watch`
    synthetic.py   large valid files written as streams (benchmark, memory tests)

Every file is converted as a stream (lxml `iterparse`, a line-by-line CSV reader): events come out one
record at a time and nothing grows with the file (MT940 excepted: the `mt-940` package reads whole
statements, held within the file size limit).
"""
