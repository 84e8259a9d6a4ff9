print('hook')
