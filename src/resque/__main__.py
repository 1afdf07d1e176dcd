from resque.cli import main

main()
