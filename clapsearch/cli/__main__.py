from clapsearch.cli import main

main()
