System.Console.WriteLine("tetrajet");
