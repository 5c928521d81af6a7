from clawfleet.cli.main import main

main()
