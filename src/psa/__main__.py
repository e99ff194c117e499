from psa.cli import main

main()
